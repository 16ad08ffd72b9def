"""Multi-view datasets: many seeds from many views with exact cameras, depth and masks, sharded and resumable.

* views.py: view samplers (the model's training pose distribution, Gaussian, uniform, orbit, a fixed list),
  each view drawn from (seed, view index) alone.
* formats.py: EG3D labels, nerfstudio / instant-ngp transforms.json, depth and normal conversions, and the
  projection maths the tests check them with.
* settings.py: DatasetSettings (the recipe, recorded in every manifest), code version, folder names.
* writer.py: one seed's folder, written in a hidden folder and renamed into place with its manifest;
  `export_seed` for a single seed with progress and cancel (the viewer's "export views of this latent").
* plan.py: seeds, shards, the resume scan, the disk estimate, the closing dataset.json and manifest.
* engines.py: this process, local worker processes, or Ray actors (optional extra `cluster`).
* run.py: `run_dataset`, the whole run.
"""

from .formats import camera_from_transforms, transforms_json
from .run import RunSummary, run_dataset
from .settings import DatasetSettings
from .views import SAMPLERS, View, ViewSpec, load_camera_list, sample_views
from .writer import export_seed, render_seed

__all__ = [
    "SAMPLERS",
    "DatasetSettings",
    "RunSummary",
    "View",
    "ViewSpec",
    "camera_from_transforms",
    "export_seed",
    "load_camera_list",
    "render_seed",
    "run_dataset",
    "sample_views",
    "transforms_json",
]
