"""Pipelines: the stage functions (preprocess, shard, collate) shared by every backend."""
