"""The course around the labs: skeletons generated from solutions, the Sphinx docs, compile flags for editors."""
