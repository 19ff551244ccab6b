"""The read side: consume, inspect, validate, show and flatten alerts."""
