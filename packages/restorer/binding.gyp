{
  "targets": [
    {
      "target_name": "restorer",
      "sources": ["native/addon/init.cc", "native/addon/launch.cc", "native/addon/finish.cc", "native/addon/shmem.cc", "native/addon/pages.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")", "<!(node -p \"require('path').join(require('path').dirname(require.resolve('@crtools/common/package.json')), 'native')\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wno-unused-parameter"],
      "cflags_cc!": ["-fno-exceptions"]
    }
  ]
}
