"""Python source knowledge shared by all layers: functions, statements, modules, imports."""
