"""vpctl, the operator CLI of VP Mission Control (see services.cli.main)."""
