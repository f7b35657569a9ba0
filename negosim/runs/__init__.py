"""Many replications: backends (in-process, processes, Dask), the chunk-and-fold loop,
streaming tallies and estimates, paired comparisons and parameter sweeps."""
