"""The machinery every op shares: the primitive recipe (``primitive``), loading the CUDA
module (``extension``), lowering in sharded programs (``partitioning``), argument checks
(``contract``), ``info()`` and the self test."""
