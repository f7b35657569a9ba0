"""Teaching on top of the pipeline: playing an actor, starting scenarios."""
