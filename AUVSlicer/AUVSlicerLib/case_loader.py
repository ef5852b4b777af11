"""Load a cohort case (image + label map) into the scene, and unload the one loaded before.

The image becomes a scalar volume, the label map a segmentation whose segments
are named after the case's classes and tagged with their label value, so the
uncertainty colouring finds them. Only nodes this loader added are removed
on unload; the user's own nodes are never touched.

Example (with the slicer-core wheel or inside Slicer):
    >>> loader = CaseLoader(scene)                                                    # doctest: +SKIP
    >>> case = loader.load("ct.nii.gz", "seg.nii.gz", {1: "spleen"}, case_id="ct1")  # doctest: +SKIP
    >>> loader.current() is case                                                      # doctest: +SKIP
    True
    >>> loader.unload()                                                               # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from auvcore.errors import InputError

from .labelmap_import import segmentation_from_labelmap
from .node_removal import remove_node_and_dependents


@dataclass(frozen=True)
class SceneCase:
    case_id: str
    volume_node: object
    segmentation_node: object


def read_volume_node(scene, node_class: str, path: Path, name: str):
    """A new ``node_class`` node read from ``path`` by its storage node (removed again when reading fails)."""
    if not path.exists():
        raise InputError(path, "does not exist")
    node = scene.AddNewNodeByClass(node_class, name)
    node.AddDefaultStorageNode(str(path))
    if not node.GetStorageNode().ReadData(node):
        remove_node_and_dependents(scene, node)
        raise InputError(path, "cannot be read as a volume")
    return node


class CaseLoader:
    """Loads one case at a time into ``scene``."""

    def __init__(self, scene) -> None:
        self.scene = scene
        self.loaded: SceneCase | None = None

    def load(self, image: str | Path, label: str | Path, class_names: Mapping[int, str] | None = None,
             case_id: str = "case") -> SceneCase:
        """Unload the previous case, then load ``image`` and ``label`` (names from ``class_names``)."""
        self.unload()
        volume = read_volume_node(self.scene, "vtkMRMLScalarVolumeNode", Path(image), case_id)
        volume.CreateDefaultDisplayNodes()
        try:
            segmentation = self._segmentation_from_label(Path(label), volume, class_names or {}, case_id)
        except Exception:
            remove_node_and_dependents(self.scene, volume)
            raise
        self.loaded = SceneCase(case_id, volume, segmentation)
        return self.loaded

    def _segmentation_from_label(self, label: Path, volume, class_names: Mapping[int, str], case_id: str):
        labelmap = read_volume_node(self.scene, "vtkMRMLLabelMapVolumeNode", label, f"{case_id} label")
        try:
            return segmentation_from_labelmap(self.scene, labelmap, class_names, f"{case_id} segmentation", volume)
        except ValueError as error:
            raise InputError(label, "cannot be imported as a segmentation") from error
        finally:
            remove_node_and_dependents(self.scene, labelmap)

    def current(self) -> SceneCase | None:
        """The loaded case, or None once its nodes left the scene (Close Scene removes them without telling us)."""
        if self.loaded is not None and any(node.GetScene() is not self.scene
                                           for node in (self.loaded.volume_node, self.loaded.segmentation_node)):
            self.unload()
        return self.loaded

    def unload(self) -> None:
        """Remove the nodes of the loaded case, if they are still in the scene."""
        if self.loaded is None:
            return
        for node in (self.loaded.segmentation_node, self.loaded.volume_node):
            if node.GetScene() is self.scene:
                remove_node_and_dependents(self.scene, node)
        self.loaded = None
