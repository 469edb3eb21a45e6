"""The dataset: its format, writer, manifest, reader and inspection.

Everything outside this package imports from here (``from blursynth.dataset
import Manifest, SampleIndex``); the modules inside import each other
directly. See docs/format.md for the files on disk.

* :mod:`.format`: names (shards, temporaries, frame arrays, renditions), version, fingerprints;
* :mod:`.writer`: :class:`ShardWriter`, :func:`write_dataset`;
* :mod:`.manifest`: :class:`Manifest`;
* :mod:`.shard`: one shard opened for reading (:func:`open_shard`), lazy handles (:class:`ShardFiles`);
* :mod:`.reader`: :class:`SampleIndex`, the one reader, with :meth:`SampleIndex.runs`;
* :mod:`.inspection`: :func:`describe` (``info``), :func:`verify`;
* :mod:`.samples`, :mod:`.torch_data`: the dataset as numpy or torch items;
* :mod:`.atomic`, :mod:`.outdir`: crash-safe files and the owner of output folders.
"""

from blursynth.atomic import file_sha256
from blursynth.dataset.format import (FORMAT_VERSION, FRAME_ARRAYS, MANIFEST, Sample, canonical_json,
                                      config_fingerprint, frame_arrays, is_frame_array, is_own_file, is_temporary,
                                      rendition_array, renditions_of, shard_name)
from blursynth.dataset.inspection import describe, verify
from blursynth.dataset.manifest import Manifest
from blursynth.dataset.reader import SampleIndex, SampleRef, ShardInfo, iter_samples
from blursynth.dataset.samples import Dataset, open_dataset
from blursynth.dataset.shard import (CheckedDataset, Shard, ShardFiles, damaged, open_shard, read_meta, reading,
                                     recorded_sources)
from blursynth.dataset.writer import ShardWriter, write_dataset

__all__ = ["FORMAT_VERSION", "FRAME_ARRAYS", "MANIFEST", "CheckedDataset", "Dataset", "Manifest", "Sample",
           "SampleIndex", "SampleRef", "Shard", "ShardFiles", "ShardInfo", "ShardWriter", "canonical_json",
           "config_fingerprint", "damaged", "describe", "file_sha256", "frame_arrays", "is_frame_array",
           "is_own_file", "is_temporary", "iter_samples", "open_dataset", "open_shard", "read_meta", "reading",
           "recorded_sources", "rendition_array", "renditions_of", "shard_name", "verify", "write_dataset"]
