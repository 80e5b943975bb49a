"""What a deploy reads besides the code, shipped in the wheel as package data: `cloudformation/` holds the template
(template.json), the state machines it inlines (montecarlo.asl.json, render.asl.json) and checkov's settings for it
(checkov-skips.yaml). The Lambda's code is the module batchpipe.aws.handlers; the images' Dockerfiles travel as the
distribution's data files (see batchpipe.aws.images)."""
