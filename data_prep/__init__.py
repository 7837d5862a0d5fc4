"""Dataset preparation: raw files the user has (or the synthetic generator writes) -> manifests."""
