"""Camera paths (issue 17): keyframes, smooth interpolation, files (ours and nerfstudio's), rendering.

Above renderer.export in the layers (it renders through renderer.export.video's writer); no GUI code.
"""
