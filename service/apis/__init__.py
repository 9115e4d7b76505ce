"""The three LitAPIs, one per task, each wiring pure task code (`service.tasks`) into LitServe's methods; their
shared setup is `base.ModelAPI`. The worker loops that call them are in `service.litserve_ext`."""
