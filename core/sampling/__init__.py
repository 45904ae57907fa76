"""Sampling loops of the generative nets, shared by the pipelines, training's sample grids and
evaluation: diffusion (DDIM/DDPM with RePaint and guidance) and the scene prior's code-by-code
sampling."""
