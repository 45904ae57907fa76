"""Judges (classifiers trained on procedural labels), their readings, and measured metrics:
FJD (not FID), label agreement, PSNR/SSIM, bits/dim, codebook usage, GenEval-style checks."""
