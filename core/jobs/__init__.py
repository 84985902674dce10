"""Jobs: trainings and evaluations as frozen values with stable keys, run in-process or on a Dask cluster."""
