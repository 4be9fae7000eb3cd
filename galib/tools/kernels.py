"""How the pipeline's notebook kernels are started: with CurveZMQ-encrypted channels.

ipykernel (≥ 7, ``IPKernelApp.init_sockets``) logs "Kernel is running over TCP without
encryption" whenever its transport is TCP and its connection file holds no CurveZMQ keys. Since
jupyter_client 8.10 the kernel manager can provision those keys itself: its configurable
``KernelManager.transport_encryption`` (``disabled`` by default) set to ``auto`` makes the local
provisioner write a fresh key pair into the connection file whenever the kernelspec declares
``"supported_encryption": ["curve"]`` (ipykernel's ``install`` writes that into the ``galib``
kernel). The kernel then encrypts its sockets, which removes the warning at its cause.

papermill hands extra keyword arguments to nbclient's ``NotebookClient``, whose ``config`` reaches
the kernel manager it creates (:func:`engine_kwargs`). Where the setting cannot apply (an older
jupyter_client without it, or a libzmq built without CurveZMQ) nothing is set and the kernel runs
as before, warning included.
"""
from __future__ import annotations


def curve_available() -> bool:
    """Whether this jupyter_client can provision CurveZMQ keys and libzmq can use them."""
    import zmq
    from jupyter_client.manager import KernelManager
    has_setting = "transport_encryption" in KernelManager.class_trait_names()
    return bool(zmq.has("curve")) and has_setting


def engine_kwargs() -> dict:
    """Keyword arguments for ``papermill.execute_notebook`` that set the kernel manager's
    ``transport_encryption`` to ``auto``; ``{}`` where :func:`curve_available` is false."""
    if not curve_available():
        return {}
    from traitlets.config import Config
    return {"config": Config({"KernelManager": {"transport_encryption": "auto"}})}
