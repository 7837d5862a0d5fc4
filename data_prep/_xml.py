"""Write and read ILSVRC / PASCAL VOC bounding-box annotation XML.

ILSVRC files keep 0-based inclusive pixel indices as given; VOC files are 1-based (``xmin = x0 + 1``),
as the real VOC2007 annotations are. Writers are deterministic (fixed element order, tab indent).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

from benchmark.data.manifest import ManifestError


@dataclass(frozen=True)
class XmlObject:
    """One ``<object>``: its name (wnid or class name), box as written in the file, flags."""

    name: str
    box: tuple[int, int, int, int]  # xmin, ymin, xmax, ymax exactly as in the file
    difficult: bool = False
    truncated: bool = False


def _sub(parent: ET.Element, tag: str, text: object | None = None) -> ET.Element:
    node = ET.SubElement(parent, tag)
    if text is not None:
        node.text = str(text)
    return node


def _document(folder: str, filename: str, source: dict[str, str], size_wh: tuple[int, int],
              objects: list[XmlObject], pose: str = "Unspecified") -> bytes:
    root = ET.Element("annotation")
    _sub(root, "folder", folder)
    _sub(root, "filename", filename)
    src = _sub(root, "source")
    for key, value in source.items():
        _sub(src, key, value)
    size = _sub(root, "size")
    _sub(size, "width", size_wh[0])
    _sub(size, "height", size_wh[1])
    _sub(size, "depth", 3)
    _sub(root, "segmented", 0)
    for obj in objects:
        node = _sub(root, "object")
        _sub(node, "name", obj.name)
        _sub(node, "pose", pose)
        _sub(node, "truncated", int(obj.truncated))
        _sub(node, "difficult", int(obj.difficult))
        bnd = _sub(node, "bndbox")
        for tag, value in zip(("xmin", "ymin", "xmax", "ymax"), obj.box):
            _sub(bnd, tag, int(value))
    ET.indent(root, space="\t")
    return ET.tostring(root, encoding="unicode").encode() + b"\n"


def ilsvrc_xml(folder: str, stem: str, size_wh: tuple[int, int], objects: list[XmlObject],
               database: str = "ILSVRC_2012") -> bytes:
    """An ILSVRC-style annotation (``filename`` without extension, 0-based boxes as given)."""
    return _document(folder, stem, {"database": database}, size_wh, objects)


def voc_xml(filename: str, size_wh: tuple[int, int], objects: list[XmlObject]) -> bytes:
    """A PASCAL VOC2007-style annotation; ``objects`` boxes must already be 1-based."""
    source = {"database": "Synthetic shapes (gradcam-benchmark)", "annotation": "PASCAL VOC2007 format",
              "image": "synthetic"}
    return _document("VOC2007", filename, source, size_wh, objects)


def _int_field(node: ET.Element, tag: str, where: str, context: str) -> int:
    child = node.find(tag)
    if child is None or child.text is None or not child.text.strip():
        raise ManifestError(f"{where}: {context}: missing field <{tag}>; expected an integer")
    text = child.text.strip()
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value.is_integer():
        raise ManifestError(f"{where}: {context}: field <{tag}> is {text!r}; expected an integer pixel index")
    return int(value)


def parse_annotation(data: bytes, where: str) -> tuple[tuple[int, int] | None, list[XmlObject]]:
    """Parse one annotation file: ``(width, height)`` from ``<size>`` (None if absent) and its objects.

    Errors name ``where`` (the file) and the field. An annotation with no ``<object>`` is an error.
    """
    if not data.strip():
        raise ManifestError(f"{where}: empty annotation file; expected an <annotation> with <object> entries")
    try:
        root = ET.fromstring(data)
    except ET.ParseError as err:
        raise ManifestError(f"{where}: not well-formed XML ({err})") from None
    if root.tag != "annotation":
        raise ManifestError(f"{where}: root element is <{root.tag}>; expected <annotation>")
    size_node = root.find("size")
    size_wh = None
    if size_node is not None:
        size_wh = (_int_field(size_node, "width", where, "<size>"), _int_field(size_node, "height", where, "<size>"))
    objects = []
    for k, node in enumerate(root.findall("object")):
        context = f"<object> #{k + 1}"
        name = (node.findtext("name") or "").strip()
        if not name:
            raise ManifestError(f"{where}: {context}: missing field <name>; expected a synset id such as n01440764")
        bnd = node.find("bndbox")
        if bnd is None:
            raise ManifestError(f"{where}: {context}: missing field <bndbox>")
        box = tuple(_int_field(bnd, tag, where, f"{context} <bndbox>") for tag in ("xmin", "ymin", "xmax", "ymax"))
        flags = [(node.findtext(tag) or "0").strip() == "1" for tag in ("difficult", "truncated")]
        objects.append(XmlObject(name, box, difficult=flags[0], truncated=flags[1]))
    if not objects:
        raise ManifestError(f"{where}: empty annotation (no <object> element); expected at least one box")
    return size_wh, objects
