"""Users' own third-party model files: upscalers and LaMa through Easel's own loaders, Stable
Diffusion through diffusers. ``files.read_state_dict`` reads any of them without unpickling;
each family module's ``detect(state_dict)`` says whether a file is one of its own."""
