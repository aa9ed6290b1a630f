{
  "targets": [
    {
      "target_name": "kerndat",
      "sources": ["native/init.cc", "native/children.cc", "native/syscall.cc", "native/ptrace_probe.cc", "native/fork_probe.cc", "native/mounts.cc", "native/netlink.cc", "native/clone3_probe.cc", "native/vdso_probe.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")", "<!(node -p \"require('path').join(require('path').dirname(require.resolve('@crtools/common/package.json')), 'native')\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wno-unused-parameter"],
      "cflags_cc!": ["-fno-exceptions"]
    }
  ]
}
