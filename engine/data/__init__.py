"""The procedural shapes world: seeded 2D scenes, their renders at any size, captions and the
caption parser, detection labels, control maps, and torch batches for training."""

from engine.data.captions import (
    BackgroundSpec,
    ShapeSpec,
    background_spec,
    caption,
    parse_background,
    parse_caption,
    scene_specs,
)
from engine.data.control_maps import edge_map, scribble_map, segmentation_class_ids, segmentation_map
from engine.data.dataset import (
    HELDOUT_SEEDS,
    TRAIN_SEEDS,
    Batch,
    Sample,
    ShapesDataset,
    collate,
    iterate_batches,
    make_sample,
    split_seeds,
    training_batches,
)
from engine.data.palette import COLOUR_NAMES, COLOURS, SEGMENTATION_COLOURS, SHAPE_CLASSES, colour_of
from engine.data.render import VISIBLE_THRESHOLD, Label, Raster, labels, rasterise, render
from engine.data.sampling import sample_scene, scene_for_seed
from engine.data.scene import POSITION_NAMES, Background, Scene, Shape

__all__ = [
    "COLOURS",
    "COLOUR_NAMES",
    "HELDOUT_SEEDS",
    "POSITION_NAMES",
    "SEGMENTATION_COLOURS",
    "SHAPE_CLASSES",
    "TRAIN_SEEDS",
    "VISIBLE_THRESHOLD",
    "Background",
    "BackgroundSpec",
    "Batch",
    "Label",
    "Raster",
    "Sample",
    "Scene",
    "Shape",
    "ShapeSpec",
    "ShapesDataset",
    "background_spec",
    "caption",
    "collate",
    "colour_of",
    "edge_map",
    "iterate_batches",
    "labels",
    "make_sample",
    "parse_background",
    "parse_caption",
    "rasterise",
    "render",
    "sample_scene",
    "scene_for_seed",
    "scene_specs",
    "scribble_map",
    "segmentation_class_ids",
    "segmentation_map",
    "split_seeds",
    "training_batches",
]
