"""Remove a node together with its display and storage nodes, which the scene would otherwise keep."""

from __future__ import annotations


def remove_node_and_dependents(scene, node) -> None:
    """Remove ``node`` with its display and storage nodes."""
    dependents = []
    for getter, count in (("GetNthDisplayNode", "GetNumberOfDisplayNodes"),
                          ("GetNthStorageNode", "GetNumberOfStorageNodes")):
        if hasattr(node, count):
            dependents += [getattr(node, getter)(i) for i in range(getattr(node, count)())]
    scene.RemoveNode(node)
    for dependent in dependents:
        if dependent is not None and dependent.GetScene() is scene:
            scene.RemoveNode(dependent)
