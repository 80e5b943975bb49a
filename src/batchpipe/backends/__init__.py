"""Backends run a pipeline's stages: `local` on this machine's cores; AWS Step Functions + Batch later."""
