"""Test helpers: real servers on loopback and the outside programs some tests need."""
