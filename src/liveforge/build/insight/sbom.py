"""The SBOM: a platform's bill of materials (:class:`~.bom.Bom`) as SPDX 2.3 JSON, written with
``live`` into the platform directory as ``sbom.spdx.json``, read back by every other verb, and
converted to CycloneDX JSON on request. Both formats are made by their maintained libraries
(spdx-tools, cyclonedx-python-lib), never by hand.

The SPDX document, for a platform ``<name>`` stamped ``<STAMP>``::

    SPDXRef-DOCUMENT    DESCRIBES  SPDXRef-Platform          the platform, version <STAMP>
    SPDXRef-Platform    CONTAINS   SPDXRef-Component-<c>     one package per component and
                                                             overlay: version, download URL
                                                             and sha256 (or git commit),
                                                             declared licence, kind=<kind>
    SPDXRef-Component-a DEPENDS_ON SPDXRef-Component-b       platform.toml's depends
    SPDXRef-Component-c CONTAINS   SPDXRef-Origin-<c>-<n>    what it is made of (the project,
                                                             each Debian or extra package)
    SPDXRef-Component-c CONTAINS   SPDXRef-File-<hash>       each shipped file: SHA-1, SHA-256

Deterministic: the namespace is made of the platform's name and stamp, the creation time is
the stamp's, and everything is in a fixed order; two builds of one stamp give the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from liveforge import __version__
from liveforge.build.buildstamp import stamp_epoch
from liveforge.build.insight.bom import Bom, Component, ShippedFile
from liveforge.build.kinds.base.origin import Origin
from liveforge.util.errors import BuildError, LiveforgeError
from liveforge.util.fileio import read_bytes, write_atomic

SPDX_FILE = "sbom.spdx.json"
CYCLONEDX_FILE = "sbom.cdx.json"
NAMESPACE = "https://liveforge.invalid/spdxdocs"
NOASSERTION = "NOASSERTION"
KIND_PREFIX = "kind="
URL_RE = re.compile(r"(https?|ftp|git|ssh)://[^\s]+\Z")


def created(stamp: str) -> datetime:
    return datetime.fromtimestamp(stamp_epoch(stamp), tz=UTC)


def _ref_id(prefix: str, name: str) -> str:
    clean = re.sub(r"[^A-Za-z0-9.-]", "-", name)
    if clean != name:
        clean += "-" + hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"SPDXRef-{prefix}-{clean}"


def file_id(path: str) -> str:
    return "SPDXRef-File-" + hashlib.sha256(path.encode()).hexdigest()[:16]


def check_licences(bom: Bom) -> None:
    """Every licence of ``bom`` is an SPDX expression of listed ids (or LicenseRef-x): else an
    error naming the component."""
    from license_expression import get_spdx_licensing

    licensing = get_spdx_licensing()
    problems = []
    for component in bom.components:
        for origin in component.origins:
            if origin.license in (NOASSERTION, "NONE"):
                continue
            info = licensing.validate(origin.license)
            unknown = [k for k in info.invalid_symbols if not str(k).startswith("LicenseRef-")]
            errors = [e for e in info.errors if not e.startswith("Unknown license key")]
            if errors:
                problems.append(f"component {component.name!r}: license {origin.license!r}: "
                                f"{'; '.join(errors)}")
            elif unknown:
                problems.append(f"component {component.name!r}: license {origin.license!r}: "
                                f"{', '.join(map(str, unknown))} is not an SPDX license id "
                                "(https://spdx.org/licenses/; or write LicenseRef-<name>)")
    if problems:
        raise BuildError("; ".join(problems))


# -- SPDX ---------------------------------------------------------------------------------------

def spdx_document(bom: Bom) -> Any:
    """``bom`` as an spdx-tools Document."""
    from license_expression import get_spdx_licensing
    from spdx_tools.spdx.model import (
        Actor,
        ActorType,
        Checksum,
        ChecksumAlgorithm,
        CreationInfo,
        Document,
        ExternalPackageRef,
        ExternalPackageRefCategory,
        ExtractedLicensingInfo,
        File,
        Package,
        PackagePurpose,
        Relationship,
        RelationshipType,
        SpdxNoAssertion,
    )
    from spdx_tools.spdx.spdx_element_utils import calculate_package_verification_code

    licensing = get_spdx_licensing()

    def licence(expr: str) -> Any:
        return SpdxNoAssertion() if expr == NOASSERTION else licensing.parse(expr)

    def package(spdx_id: str, name: str, kind: str, origin: Origin, version: str,
                expr: str, files: list[Any]) -> Any:
        location: Any = SpdxNoAssertion()
        source_info = None
        url = origin.source if URL_RE.match(origin.source) else ""
        if origin.commit:
            location = f"git+{url}@{origin.commit}" if url else SpdxNoAssertion()
            source_info = f"git commit {origin.commit}" + \
                (f" from {origin.source}" if origin.source else "")
        elif url:
            location = url
        refs = []
        if kind == "deb":
            refs.append(ExternalPackageRef(ExternalPackageRefCategory.PACKAGE_MANAGER, "purl",
                                           f"pkg:deb/debian/{origin.name}@{origin.version}"))
        return Package(
            spdx_id=spdx_id, name=name, download_location=location, version=version,
            files_analyzed=bool(files),
            verification_code=calculate_package_verification_code(files) if files else None,
            checksums=[Checksum(ChecksumAlgorithm.SHA256, origin.sha256)] if origin.sha256
            else [], source_info=source_info, license_concluded=SpdxNoAssertion(),
            license_declared=licence(expr), license_comment=origin.note or None,
            license_info_from_files=[SpdxNoAssertion()] if files else [],
            copyright_text=SpdxNoAssertion(), comment=f"{KIND_PREFIX}{kind}",
            external_references=refs)

    files_of: dict[str, list[Any]] = {c.name: [] for c in bom.components}
    for shipped in bom.files:
        files_of.setdefault(shipped.component, []).append(File(
            name=f"./{shipped.path}", spdx_id=file_id(shipped.path),
            checksums=[Checksum(ChecksumAlgorithm.SHA1, shipped.sha1),
                       Checksum(ChecksumAlgorithm.SHA256, shipped.sha256)],
            license_concluded=SpdxNoAssertion(), copyright_text=SpdxNoAssertion()))
    root = "SPDXRef-Platform"
    packages = [Package(spdx_id=root, name=bom.platform, download_location=SpdxNoAssertion(),
                        version=bom.stamp, files_analyzed=False,
                        license_concluded=SpdxNoAssertion(), license_declared=SpdxNoAssertion(),
                        copyright_text=SpdxNoAssertion(),
                        primary_package_purpose=PackagePurpose.OPERATING_SYSTEM,
                        built_date=created(bom.stamp))]
    relationships = [Relationship("SPDXRef-DOCUMENT", RelationshipType.DESCRIBES, root)]
    ids = {c.name: _ref_id("Component", c.name) for c in bom.components}
    refs: dict[str, str] = {}
    for component in bom.components:
        cid = ids[component.name]
        single = component.origins[0] if len(component.origins) == 1 else \
            Origin(component.name, component.version, component.license)
        packages.append(package(cid, component.name, component.kind, single,
                                component.version, component.license,
                                files_of.get(component.name, [])))
        relationships.append(Relationship(root, RelationshipType.CONTAINS, cid))
        relationships += [Relationship(cid, RelationshipType.DEPENDS_ON, ids[d])
                          for d in component.depends if d in ids]
        for origin in component.origins:
            refs.update(origin.refs)
        for number, origin in enumerate(component.origins, 1):
            oid = _ref_id("Origin", f"{component.name}-{number}")
            packages.append(package(oid, origin.name, component.kind, origin,
                                    origin.version, origin.license, []))
            relationships.append(Relationship(cid, RelationshipType.CONTAINS, oid))
        relationships += [Relationship(cid, RelationshipType.CONTAINS, f.spdx_id)
                          for f in files_of.get(component.name, [])]
    files = [f for c in bom.components for f in files_of.get(c.name, [])]
    files.sort(key=lambda f: f.name)
    info = CreationInfo(
        spdx_version="SPDX-2.3", spdx_id="SPDXRef-DOCUMENT",
        name=f"{bom.platform}-{bom.stamp}",
        document_namespace=f"{NAMESPACE}/{bom.platform}-{bom.stamp}",
        creators=[Actor(ActorType.TOOL, f"liveforge-{__version__}")],
        created=created(bom.stamp))
    extracted = [ExtractedLicensingInfo(license_id=ref, extracted_text=text,
                                        license_name=ref[len("LicenseRef-"):])
                 for ref, text in sorted(refs.items())]
    return Document(info, packages=packages, files=files, relationships=relationships,
                    extracted_licensing_info=extracted)


def spdx_json(bom: Bom, validate: bool = False) -> str:
    """``bom`` as SPDX 2.3 JSON text. The licences are checked (the one input a user writes);
    with ``validate`` the whole document is too, by spdx-tools (a problem is a BuildError).
    That validation takes time growing with the square of the number of files (4,000 files:
    about 40 s), so a build leaves it to the tests, which validate what the build writes."""
    from spdx_tools.spdx.jsonschema.document_converter import DocumentConverter

    check_licences(bom)
    document = spdx_document(bom)
    if validate:
        from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

        problems = validate_full_spdx_document(document)
        if problems:
            raise BuildError("the SBOM is not valid SPDX: " +
                             "; ".join(p.validation_message for p in problems[:5]))
    data = DocumentConverter().convert(document)
    return json.dumps(data, indent=2, sort_keys=False) + "\n"


def write_spdx(bom: Bom, path: Path) -> None:
    write_atomic(path, spdx_json(bom))


def read_spdx(path: Path) -> Bom:
    """The bill of materials in a platform's ``sbom.spdx.json`` (parsed by spdx-tools)."""
    from spdx_tools.spdx.model import RelationshipType
    from spdx_tools.spdx.parser.error import SPDXParsingError
    from spdx_tools.spdx.parser.parse_anything import parse_file

    if not path.is_file():
        raise LiveforgeError(f"{path} does not exist: the platform was built without an SBOM "
                             "(run 'liveforge live' again)")
    try:
        document = parse_file(str(path))
    except SPDXParsingError as exc:
        raise LiveforgeError(f"{path}: not an SPDX document: "
                             f"{'; '.join(exc.get_messages()[:3])}") from None
    except (ValueError, OSError) as exc:
        raise LiveforgeError(f"{path}: not an SPDX document: {exc}") from None
    by_id = {p.spdx_id: p for p in document.packages}
    files = {f.spdx_id: f for f in document.files}
    contains: dict[str, list[str]] = {}
    depends: dict[str, list[str]] = {}
    for rel in document.relationships:
        target = str(rel.related_spdx_element_id)
        if rel.relationship_type == RelationshipType.CONTAINS:
            contains.setdefault(rel.spdx_element_id, []).append(target)
        elif rel.relationship_type == RelationshipType.DEPENDS_ON:
            depends.setdefault(rel.spdx_element_id, []).append(target)
    texts = {str(e.license_id): e.extracted_text or ""
             for e in document.extracted_licensing_info}
    root = next(p for p in document.packages if p.spdx_id == "SPDXRef-Platform")
    components: list[Component] = []
    shipped: list[ShippedFile] = []
    for cid in contains.get(root.spdx_id, []):
        pkg = by_id[cid]
        kind = (pkg.comment or "").removeprefix(KIND_PREFIX)
        children = [by_id[i] for i in contains.get(cid, []) if i in by_id]
        origins = tuple(_origin(p, texts) for p in children)
        components.append(Component(pkg.name, kind, origins,
                                    tuple(by_id[d].name for d in depends.get(cid, []))))
        for fid in contains.get(cid, []):
            if fid in files:
                sums = {c.algorithm.name: c.value for c in files[fid].checksums}
                shipped.append(ShippedFile(files[fid].name.removeprefix("./"), pkg.name,
                                           sums.get("SHA1", ""), sums.get("SHA256", "")))
    return Bom(root.name, root.version or "", tuple(components),
               tuple(sorted(shipped, key=lambda f: f.path)))


def _origin(pkg: Any, texts: dict[str, str]) -> Origin:
    location = str(pkg.download_location)
    commit = ""
    if pkg.source_info and pkg.source_info.startswith("git commit "):
        commit, _, location = pkg.source_info.removeprefix("git commit ").partition(" from ")
    if location == NOASSERTION:
        location = ""
    expr = str(pkg.license_declared) if pkg.license_declared is not None else NOASSERTION
    sha256 = next((c.value for c in pkg.checksums if c.algorithm.name == "SHA256"), "")
    refs = tuple((r, texts[r]) for r in sorted(set(re.findall(r"LicenseRef-[A-Za-z0-9.-]+",
                                                              expr))) if r in texts)
    return Origin(pkg.name, pkg.version or NOASSERTION, expr, location, sha256, commit,
                  pkg.license_comment or "", refs)


# -- CycloneDX ----------------------------------------------------------------------------------

# the metadata property of a CycloneDX document that names the SPDX document it was made from
MADE_FROM = "liveforge:spdx-sha256"


def cyclonedx_of(platform: Path, keep: bool) -> str:
    """The platform's SBOM as CycloneDX: the document kept in its :data:`CYCLONEDX_FILE` while
    that says (:data:`MADE_FROM`) it was made from the platform's SPDX document as it is, else
    converted from it (``keep``: and kept). The conversion of a big platform takes long
    (cyclonedx-python-lib's model), the platform's SPDX document never changes: it is done
    once."""
    try:
        digest = hashlib.sha256(read_bytes(platform / SPDX_FILE)).hexdigest()
    except OSError:
        digest = ""  # read_spdx says what is wrong
    kept = platform / CYCLONEDX_FILE
    try:
        text = read_bytes(kept).decode()
        properties = json.loads(text)["metadata"]["properties"]
        if digest and {"name": MADE_FROM, "value": digest} in properties:
            return text
    except (OSError, ValueError, KeyError, TypeError):
        pass
    text = cyclonedx_json(read_spdx(platform / SPDX_FILE), made_from=digest)
    if keep:
        write_atomic(kept, text)
    return text


def cyclonedx_json(bom: Bom, made_from: str = "") -> str:
    """``bom`` as CycloneDX 1.6 JSON (cyclonedx-python-lib), each component with its origins'
    data and its files as nested components of type file; ``made_from``: the sha256 of the
    SPDX document it is made from (see :func:`cyclonedx_of`)."""
    import uuid

    from cyclonedx.model import (
        ExternalReference,
        ExternalReferenceType,
        HashAlgorithm,
        HashType,
        Property,
        XsUri,
    )
    from cyclonedx.model.bom import Bom as CdxBom
    from cyclonedx.model.bom import BomMetaData
    from cyclonedx.model.component import Component as CdxComponent
    from cyclonedx.model.component import ComponentType
    from cyclonedx.model.license import LicenseExpression
    from cyclonedx.model.tool import ToolRepository
    from cyclonedx.output.json import JsonV1Dot6
    from packageurl import PackageURL

    def licences(expr: str) -> list[Any]:
        return [] if expr in (NOASSERTION, "NONE") else [LicenseExpression(expr)]

    def part(origin: Origin, kind: str, ref: str, files: list[Any]) -> Any:
        """One origin of a component: what it is made from."""
        externals = []
        if origin.source:
            externals.append(ExternalReference(
                type=ExternalReferenceType.VCS if origin.commit else
                ExternalReferenceType.DISTRIBUTION, url=XsUri(origin.source),
                comment=f"commit {origin.commit}" if origin.commit else None))
        return CdxComponent(
            name=origin.name, version=origin.version, bom_ref=ref,
            type=ComponentType.OPERATING_SYSTEM if kind == "overlay" else
            ComponentType.LIBRARY, licenses=licences(origin.license),
            hashes=[HashType(alg=HashAlgorithm.SHA_256, content=origin.sha256)]
            if origin.sha256 else [], external_references=externals,
            purl=PackageURL("deb", "debian", origin.name, origin.version)
            if kind == "deb" else None, components=files, description=f"{KIND_PREFIX}{kind}")

    by_component: dict[str, list[Any]] = {}
    for shipped in bom.files:
        by_component.setdefault(shipped.component, []).append(CdxComponent(
            name=shipped.path, type=ComponentType.FILE, bom_ref=f"file:{shipped.path}",
            hashes=[HashType(alg=HashAlgorithm.SHA_1, content=shipped.sha1),
                    HashType(alg=HashAlgorithm.SHA_256, content=shipped.sha256)]))
    made: dict[str, Any] = {}
    for component in bom.components:
        ref = f"component:{component.name}"
        inner = [part(o, component.kind, f"{ref}:{n}", [])
                 for n, o in enumerate(component.origins, 1)]
        made[component.name] = CdxComponent(
            name=component.name, version=component.version, bom_ref=ref,
            type=ComponentType.OPERATING_SYSTEM if component.kind == "overlay" else
            ComponentType.LIBRARY, licenses=licences(component.license),
            components=[*inner, *by_component.get(component.name, [])],
            description=f"{KIND_PREFIX}{component.kind}")
    platform = CdxComponent(name=bom.platform, version=bom.stamp,
                            type=ComponentType.OPERATING_SYSTEM, bom_ref="platform")
    serial = uuid.uuid5(uuid.NAMESPACE_URL, f"{NAMESPACE}/{bom.platform}-{bom.stamp}")
    cdx = CdxBom(serial_number=serial, metadata=BomMetaData(
        timestamp=created(bom.stamp), component=platform,
        properties=[Property(name=MADE_FROM, value=made_from)] if made_from else None,
        tools=ToolRepository(components=[CdxComponent(
            name="liveforge", version=__version__, type=ComponentType.APPLICATION,
            bom_ref="tool:liveforge")])))
    for component in bom.components:
        cdx.components.add(made[component.name])
        cdx.register_dependency(platform, [made[component.name]])
    for component in bom.components:
        cdx.register_dependency(made[component.name], [made[d] for d in component.depends
                                                       if d in made])
    text = JsonV1Dot6(cdx).output_as_string(indent=2)
    return text + "\n"
