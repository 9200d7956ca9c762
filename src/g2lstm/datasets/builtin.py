"""The built-in dataset specs (PTB, WikiText-2/103, Multi30k, IWSLT'14), registered on import."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Literal

from g2lstm.datasets.spec import DatasetSpec, RemoteFile, register_dataset

#: Cap of the small datasets' downloads and unpacked files (PTB: 34 MB archive, 6 MB unpacked).
_64_MIB = 64 << 20


def _lm_archive(
    name: str,
    url: str,
    archive: Literal["tar", "zip"],
    prefix: str,
    pattern: str,
    description: str,
    sha256: Mapping[str, str] | None = None,
    note: str = "",
    max_bytes: int = _64_MIB,
) -> DatasetSpec:
    members = tuple(
        (prefix + pattern.format(split), f"{split}.txt") for split in ("train", "valid", "test")
    )
    remote = RemoteFile(url, None, members, archive)
    return DatasetSpec(
        name,
        "lm",
        (remote,),
        tuple((sha256 or {}).items()),
        description=description,
        note=note,
        max_bytes=max_bytes,
    )


def _builtin_specs() -> Iterator[DatasetSpec]:
    # Archive sha256s are not pinned (not known here); the extracted files are pinned for PTB
    # (values of shared/data/README.md); WikiText is trusted on first use (SHA256SUMS).
    yield _lm_archive(
        "ptb",
        "http://www.fit.vutbr.cz/~imikolov/rnnlm/simple-examples.tgz",
        "tar",
        "./simple-examples/data/",
        "ptb.{}.txt",
        "Penn Treebank, Mikolov's preprocessed version (10k vocab, 929,589/73,760/82,430 tokens)",
        {
            "train.txt": "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf",
            "valid.txt": "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2",
            "test.txt": "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0",
        },
    )
    for wt in ("wikitext-2", "wikitext-103"):
        yield _lm_archive(
            wt,
            f"https://s3.amazonaws.com/research.metamind.io/wikitext/{wt}-v1.zip",
            "zip",
            f"{wt}/",
            "wiki.{}.tokens",
            f"WikiText ({wt}, tokenised, with <unk>)",
            note="archive and file sha256 unknown: trusted on first download, then recorded",
            max_bytes=_64_MIB if wt == "wikitext-2" else 1 << 30,  # 13 MB / 540 MB unpacked
        )
    # Pinned to the commit whose files the sha256 values below describe (see README).
    base = (
        "https://raw.githubusercontent.com/multi30k/dataset/"
        "a3d2e0d26b56f3846f66a952536ffed4e401d05a/data/task1"
    )
    splits = {"train": "train", "val": "val", "test2016": "test_2016_flickr"}
    files, sha = [], dict(_MULTI30K_SHA256)
    for ours, theirs in splits.items():
        for lang in ("de", "en"):
            files.append(
                RemoteFile(
                    f"{base}/raw/{theirs}.{lang}.gz", None, (("", f"raw/{ours}.{lang}"),), "gz"
                )
            )
            files.append(
                RemoteFile(
                    f"{base}/tok/{theirs}.lc.norm.tok.{lang}",
                    None,
                    (("", f"tok/{ours}.{lang}"),),
                    "plain",
                )
            )
    yield DatasetSpec(
        "multi30k",
        "mt",
        tuple(files),
        tuple(sha.items()),
        description="Multi30k task 1 De-En: raw (cased) and tok (lc.norm.tok)",
        max_bytes=_64_MIB,
    )
    yield DatasetSpec(
        "iwslt14",
        "mt",
        (),
        layout=tuple(f"{s}.{lang}" for s in ("train", "valid", "test") for lang in ("de", "en")),
        description="IWSLT'14 De-En as produced by fairseq's prepare-iwslt14.sh",
        note=(
            "it is built from the TED de-en.tgz by the machine-translation data pipeline "
            "(Moses tokeniser, clean-corpus-n, lowercase, joint BPE); run that preparation "
            "step and place its output files train/valid/test.{de,en} under the data folder's "
            "iwslt14/ (licence: CC BY-NC-ND 4.0)"
        ),
    )


_MULTI30K_SHA256 = {
    "raw/test2016.de": "4be6b5b3236b79c25475c6bb829800a7ce559e9ba7a1f6c2394fe4d40be46d16",
    "raw/test2016.en": "399a4382932c1aadd3ceb9bef1008d388a64c76d4ae4e9d4728c6f4301cac182",
    "raw/train.de": "2c2b73fd2b548fbcde3a875e0a78d6ee94d498bfdee6bd3eae3945779e9ddf72",
    "raw/train.en": "460a15fbd157e34a7a9957ee388c1ca247fe47af3ef25fb50442af6c274e0fc6",
    "raw/val.de": "660e09eb7e1da2f856ea13ee5ad3cf6d36b3d5b0b733c857e94c5747a3dfc660",
    "raw/val.en": "1f2a23d992769b5b3d209b0a10dd0b77c08cceb1f20dfb97ed0aafa49d107227",
    "tok/test2016.de": "c6a33d39d48f9f510de147651316cd9d918e09ad0219df734a2f16b6baccacc4",
    "tok/test2016.en": "5b7f32627cf99eced828311b955dae9800bb52bc8b91cf8b6526829e605b29d2",
    "tok/train.de": "cb5a23529b65ec2061f1dc446192a9c37382b63cc75f81a0be59d34894b3a505",
    "tok/train.en": "08925f8e0572bcd5a006702fc5fe20e2d77c6917d4eebd576fc20de6693c2119",
    "tok/val.de": "97232bd273eceb7207f689527386a97e4be2616b18ada47576bdaf96c8ae1f00",
    "tok/val.en": "46573ce391ae227f1c72f873392436a20ef18e0a6d518098cfbd70b77c8572ec",
}

for _spec in _builtin_specs():
    register_dataset(_spec)
