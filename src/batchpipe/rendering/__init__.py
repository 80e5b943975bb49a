"""Rendering: .blend inspection, frame chunking, Blender and FFmpeg command lines, frame checks."""
