"""Running the workspace's tests and turning their failures into places in the code."""
