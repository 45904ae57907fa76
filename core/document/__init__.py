"""Documents without Qt: the layer stack, the ``.easel`` file, and layered files of other
programs (OpenRaster, Photoshop). The desktop canvas and the ``easel export`` and
``easel import-layers`` commands share this code.
"""

from core.document.easel_format import Contents, decode, encode, peek
from core.document.files import (
    LAYERED_SUFFIXES,
    read_document,
    read_layered,
    write_layered,
)
from core.document.stack import (
    MASK_NAME,
    MAX_LAYERS,
    DocumentError,
    Layer,
    LayerStack,
    composite,
    flatten,
)

__all__ = [
    "LAYERED_SUFFIXES",
    "MASK_NAME",
    "MAX_LAYERS",
    "Contents",
    "DocumentError",
    "Layer",
    "LayerStack",
    "composite",
    "decode",
    "encode",
    "flatten",
    "peek",
    "read_document",
    "read_layered",
    "write_layered",
]
