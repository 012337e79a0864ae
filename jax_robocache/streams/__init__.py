"""Time streams: ``resample`` (one series at new times) and ``align`` (many streams onto one
clock), their shared query planning (``interp``, the twin of the CUDA planner), ``Stream``
and host-side timestamp handling."""
