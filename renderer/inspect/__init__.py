"""The inspector's model side (issue 16): what the viewer's inspector panels and `triplane-render inspect` show.

One module per purpose: layers (intermediate outputs captured with thread-local hooks, their statistics
and display images), planes (tri-plane axes, PCA and channel images, texel look-up), slices (density and
colour cross-sections from cached planes), probe (one pixel's ray), runs (training-run snapshot folders)
and sheet (the headless figure files). No GUI imports: the viewer draws what these return.
"""
