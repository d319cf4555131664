# Run by kea INSIDE a target interpreter: print facts about it as one JSON object.
# argv[1]: a directory holding kea's copy of `packaging` (the target may not have it).
# Keep this compatible with old Pythons: no annotations, no walrus, no f-string tricks.
import json
import os
import platform
import sys
import sysconfig

SYS_PATH = [p for p in sys.path if p and os.path.isabs(p)]
if len(sys.argv) > 1:
    sys.path.insert(0, sys.argv[1])

from packaging.tags import sys_tags  # noqa: E402

PLACEHOLDER = "@@KEA_PREFIX@@"


def marker_environment():  # type: ignore[no-untyped-def]
    # The environment markers of PEP 508, each computed as the PEP's table says. (Not
    # packaging.markers.default_environment: importing packaging.markers was half the probe.)
    impl = sys.implementation
    iv = impl.version
    impl_version = ".".join(str(n) for n in (iv.major, iv.minor, iv.micro))
    if iv.releaselevel != "final":
        impl_version += iv.releaselevel[0] + str(iv.serial)
    return {
        "implementation_name": impl.name,
        "implementation_version": impl_version,
        "os_name": os.name,
        "platform_machine": platform.machine(),
        "platform_release": platform.release(),
        "platform_system": platform.system(),
        "platform_version": platform.version(),
        "python_full_version": platform.python_version(),
        "platform_python_implementation": platform.python_implementation(),
        "python_version": ".".join(platform.python_version_tuple()[:2]),
        "sys_platform": sys.platform,
    }


def prefix_scheme():  # type: ignore[no-untyped-def]
    names = sysconfig.get_scheme_names()
    scheme = "nt" if os.name == "nt" else "posix_prefix"
    get_preferred = getattr(sysconfig, "get_preferred_scheme", None)
    if get_preferred is not None:
        scheme = get_preferred("prefix")
    if scheme not in names:
        scheme = names[0]
    v = {
        "base": PLACEHOLDER,
        "platbase": PLACEHOLDER,
        "installed_base": PLACEHOLDER,
        "installed_platbase": PLACEHOLDER,
    }
    return sysconfig.get_paths(scheme=scheme, vars=v)


is_venv = sys.prefix != getattr(sys, "base_prefix", sys.prefix)
paths = sysconfig.get_paths()
ver = str(sys.version_info[0]) + "." + str(sys.version_info[1])
if is_venv:
    headers = os.path.join(sys.prefix, "include", "site", "python" + ver)
else:
    headers = paths.get("include", os.path.join(sys.prefix, "include"))

print(
    json.dumps(
        {
            "sys_executable": sys.executable,
            "version": list(sys.version_info[:3]),
            "python_full_version": platform.python_version(),
            "implementation": sys.implementation.name,
            "prefix": sys.prefix,
            "base_prefix": getattr(sys, "base_prefix", sys.prefix),
            "is_venv": is_venv,
            "markers": marker_environment(),
            "tags": [str(t) for t in sys_tags()],
            "paths": paths,
            "prefix_paths": prefix_scheme(),
            "headers": headers,
            "sys_path": SYS_PATH,
            "pyc_tag": sys.implementation.cache_tag,
        }
    )
)
