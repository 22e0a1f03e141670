"""What demo, tests and bench share: processes (collector, stand-ins), provider stand-ins, span and storage helpers."""
