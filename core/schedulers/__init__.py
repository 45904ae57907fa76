"""DDPM/DDIM noise schedules and step functions (no learned parameters)."""

from core.schedulers.schedule import DDIMScheduler, DDPMScheduler, NoiseSchedule, Scheduler

__all__ = ["DDIMScheduler", "DDPMScheduler", "NoiseSchedule", "Scheduler"]
