# Builds build/Release/lmdistill_native.node. Kernel translation units that need a wider instruction
# set are separate static libraries with their own flags (gyp has no per-file flags); the addon picks
# one at load time (native/src/dispatch.cc), so one build runs on any x86-64 CPU. Nothing is built
# with -march=native.
{
  'variables': {
    'kernel_cflags': ['-O3', '-fPIC', '-ffp-contract=fast', '-fno-math-errno', '-fno-trapping-math', '-Wall', '-Wextra', '-Wno-psabi'],
  },
  'targets': [
    {
      'target_name': 'lmdistill_native',
      'sources': [
        'native/src/addon.cc',
        'native/src/addon_rowloss.cc',
        'native/src/addon_attention.cc',
        'native/src/dispatch.cc',
        'native/src/fused.cc',
        'native/src/gemm.cc',
        'native/src/pool.cc',
        'native/src/rowloss.cc',
        'native/src/strided.cc',
        'native/src/isa_generic.cc',
      ],
      'dependencies': ["<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"],
      'defines': ['NAPI_VERSION=8'],
      'cflags': ['<@(kernel_cflags)'],
      'cflags_cc': ['-std=gnu++17'],
      'xcode_settings': {'OTHER_CFLAGS': ['-O3'], 'CLANG_CXX_LANGUAGE_STANDARD': 'gnu++17'},
      'conditions': [
        ['OS=="linux"', {'libraries': ['-lpthread']}],
        ['target_arch=="x64" and OS!="win"', {'dependencies': ['lmdistill_avx2', 'lmdistill_avx512']}],
      ],
    },
  ],
  'conditions': [
    ['target_arch=="x64" and OS!="win"', {
      'targets': [
        {
          'target_name': 'lmdistill_avx2',
          'type': 'static_library',
          'sources': ['native/src/isa_avx2.cc'],
          'cflags': ['<@(kernel_cflags)', '-mavx2', '-mfma'],
          'cflags_cc': ['-std=gnu++17'],
          'xcode_settings': {'OTHER_CFLAGS': ['-O3', '-mavx2', '-mfma', '-ffp-contract=fast']},
        },
        {
          'target_name': 'lmdistill_avx512',
          'type': 'static_library',
          'sources': ['native/src/isa_avx512.cc'],
          'cflags': ['<@(kernel_cflags)', '-mavx512f', '-mavx512bw', '-mavx2', '-mfma'],
          'cflags_cc': ['-std=gnu++17'],
          'xcode_settings': {'OTHER_CFLAGS': ['-O3', '-mavx512f', '-mavx512bw', '-mavx2', '-mfma', '-ffp-contract=fast']},
        },
      ],
    }],
  ],
}
