"""Container and Lambda entrypoints: thin wrappers over the pipelines, reading and writing URIs."""
