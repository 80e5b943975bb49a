"""Deploying the stack as a plan: the planner reads remote state through `remote.RemoteState` and returns a
`plan.DeployPlan`, which `--dry-run` shows (`plan.describe`) and `batchpipe.aws.deploy.execute` carries out."""
