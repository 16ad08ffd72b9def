"""Outputs that are complete or absent: screenshots with their recipe, depth maps, meshes, videos.

* files.py: path checks before slow work, atomic writes (temp file + rename), the PNG writer,
  numbered names.
* screenshot.py: PNGs that carry their RenderRequest (re-rendered by `images --from-png`), and
  depth maps as float32 .npy + 16-bit PNG.
* mesh.py: meshes from cached tri-planes (marching cubes, field normals, vertex colours) and
  `export_mesh`; mesh_files.py: the Mesh type and the .ply/.obj/.glb/.mrc writers.
* video.py: orbit and interpolation videos through the engine, as MP4.

Long jobs take progress and cancel arguments (renderer.progress); expected failures raise
renderer.errors.ExportError, a cancel raises Cancelled.
"""
