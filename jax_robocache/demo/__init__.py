"""End-to-end demos, each training one policy in-graph and host-fed.

Run ``python -m jax_robocache.demo --help``. Task ``chunking`` (default):

* ``chunking``: episodes, the window spec and the per-sample host loader;
* ``chunk_model``: the MLP and its padding-masked L1 loss; ``chunk_train``: the two
  training loops; ``chunk_run``: the run and its printout.

Task ``lidar`` (``--task lidar``), robot motion from real LiDAR scans and odometry:

* ``episode``: the raw streams (shipped recording ``data/sena.npz`` or a ROS 2 bag);
* ``task``: the task and its preprocessing, in-graph (``align`` + ``voxelize``) and numpy;
* ``model``: a small pure-JAX network and Adam; ``train``: the two training loops;
* ``report``: table and plot; ``cli``: the command line;
* ``synthetic``: larger multi-rate episode sets for benchmarks;
* ``sena_bag``: the shipped recording written as a ROS 2 bag.
"""


def main(argv=None):
    """Runs the demo with command-line arguments ``argv`` (see ``--help``); returns its numbers."""
    from .cli import main as run

    return run(argv)


__all__ = ["main"]
