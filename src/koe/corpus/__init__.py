"""Corpus manifests and importers; see koe.corpus.manifest for the format."""

from koe.corpus.manifest import Utterance, iter_manifest, read_manifest, write_manifest

__all__ = ["Utterance", "iter_manifest", "read_manifest", "write_manifest"]
