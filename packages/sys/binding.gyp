{
  "targets": [
    {
      "target_name": "sys",
      "sources": ["native/init.cc", "native/handles.cc", "native/process.cc", "native/pipes.cc", "native/sockets.cc", "native/cpu.cc", "native/probe.cc", "native/packets.cc", "native/memory.cc", "native/files.cc", "native/tty.cc", "native/tcp.cc", "native/sysvipc.cc", "native/netns.cc", "native/mounts.cc", "native/tun.cc", "native/source.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")", "<!(node -p \"require('path').join(require('path').dirname(require.resolve('@crtools/common/package.json')), 'native')\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wno-unused-parameter"],
      "cflags_cc!": ["-fno-exceptions"]
    }
  ]
}
