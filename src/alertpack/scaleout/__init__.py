"""Scale-out: many detectors on many processes."""
