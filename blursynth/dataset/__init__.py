"""The dataset: its format, writer, manifest, reader and inspection.

Everything outside this package imports from here (``from blursynth.dataset
import Manifest, iter_samples``); the modules inside import each other
directly. See docs/format.md for the files on disk.
"""

from blursynth.dataset.atomic import file_sha256
from blursynth.dataset.samples import Dataset, open_dataset
from blursynth.dataset.shards import (FORMAT_VERSION, FRAME_ARRAYS, MANIFEST, CheckedDataset, Manifest, Sample,
                                      Shard, ShardWriter, canonical_json, config_fingerprint, damaged, describe,
                                      frame_arrays, is_frame_array, is_own_file, is_temporary, iter_samples,
                                      open_shard, read_meta, reading, recorded_sources, rendition_array,
                                      renditions_of, shard_name, verify, write_dataset)

__all__ = ["FORMAT_VERSION", "FRAME_ARRAYS", "MANIFEST", "CheckedDataset", "Dataset", "Manifest", "Sample", "Shard",
           "ShardWriter", "canonical_json", "config_fingerprint", "damaged", "describe", "file_sha256",
           "frame_arrays", "is_frame_array", "is_own_file", "is_temporary", "iter_samples", "open_dataset",
           "open_shard", "read_meta", "reading", "recorded_sources", "rendition_array", "renditions_of",
           "shard_name", "verify", "write_dataset"]
