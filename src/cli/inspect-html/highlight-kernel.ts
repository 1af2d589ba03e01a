// Syntax highlighting of the emitted CUDA and WGSL, for the inspect page. Hand-written because
// the kernels use a small, known subset of both languages: highlight.js has no WGSL and Shiki
// would bring a regex engine and megabytes of TextMate grammars for two small vocabularies.
// It only colours: the tokens' texts joined are the source unchanged.
import { pushToken, type Token, type TokenClass } from './highlight-tokens.ts';

export type KernelLanguage = 'cuda' | 'wgsl';

const words = (text: string): ReadonlySet<string> => new Set(text.trim().split(/\s+/));

const CUDA_KEYWORDS = words(`
  alignas alignof asm auto break case catch class const const_cast constexpr continue decltype default
  delete do dynamic_cast else enum explicit extern false for friend goto if inline namespace new noexcept
  nullptr operator private protected public register reinterpret_cast return sizeof static static_assert
  static_cast struct switch template this throw true try typedef typename union using virtual volatile while
  __global__ __device__ __host__ __shared__ __constant__ __restrict__ __forceinline__ __noinline__
  __launch_bounds__ __align__`);
const CUDA_TYPES = words(`
  bool char short int long float double void signed unsigned size_t
  int8_t int16_t int32_t int64_t uint8_t uint16_t uint32_t uint64_t
  half __half __half2 __nv_bfloat16 __nv_bfloat162 dim3 cudaStream_t cudaError_t
  float2 float4 int2 int4 uint2 uint4 ushort`);
const CUDA_BUILTINS = words(`
  threadIdx blockIdx blockDim gridDim warpSize __syncthreads __syncwarp __ldg __shfl_sync __shfl_xor_sync
  __shfl_down_sync __float2bfloat16_rn __bfloat162float __float2half_rn __half2float __bfloat16_as_ushort
  __half_as_ushort __cvta_generic_to_shared __fdiv_rn fmaf fminf fmaxf rintf sqrtf expf atomicAdd make_uint4`);

const WGSL_KEYWORDS = words(`
  alias break case const const_assert continue continuing default diagnostic discard else enable false fn
  for if let loop override requires return struct switch true var while
  function private workgroup uniform storage read write read_write`);
const WGSL_TYPES = words(`
  bool f16 f32 i32 u32 array atomic ptr vec2 vec3 vec4 vec2f vec3f vec4f vec2u vec3u vec4u vec2i vec3i vec4i
  vec2h vec3h vec4h mat2x2 mat3x3 mat4x4 mat2x2f mat3x3f mat4x4f`);
const WGSL_BUILTINS = words(`
  workgroupBarrier storageBarrier select min max clamp abs round floor ceil fma dot sqrt exp
  extractBits insertBits bitcast arrayLength atomicAdd atomicLoad atomicStore
  subgroupAdd subgroupShuffle subgroupBroadcast pack2x16float unpack2x16float
  global_invocation_id local_invocation_id local_invocation_index workgroup_id num_workgroups
  subgroup_invocation_id subgroup_size`);

const VOCABULARY: Readonly<Record<KernelLanguage, { keywords: ReadonlySet<string>; types: ReadonlySet<string>; builtins: ReadonlySet<string> }>> = {
  cuda: { keywords: CUDA_KEYWORDS, types: CUDA_TYPES, builtins: CUDA_BUILTINS },
  wgsl: { keywords: WGSL_KEYWORDS, types: WGSL_TYPES, builtins: WGSL_BUILTINS },
};

// One alternation, tried at each position in order; the first group that matched names the class.
const LEXEMES = new RegExp([
  String.raw`(?<comment>//[^\n]*|/\*[\s\S]*?(?:\*/|$))`,
  String.raw`(?<string>"(?:[^"\\\n]|\\.)*"?|'(?:[^'\\\n]|\\.)*'?)`,
  String.raw`(?<number>0[xX][0-9a-fA-F]+[uUlLif]*|(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?[uUlLfFhi]*)`,
  String.raw`(?<attribute>@[A-Za-z_][A-Za-z0-9_]*)`,
  String.raw`(?<word>[A-Za-z_][A-Za-z0-9_]*)`,
  String.raw`(?<directive>#[^\n]*)`,
  String.raw`(?<other>\s+|[^\sA-Za-z0-9_"'@#/.]+|[\s\S])`,
].join('|'), 'gy');

export function tokenizeKernel(source: string, language: KernelLanguage): Token[] {
  const vocabulary = VOCABULARY[language];
  const tokens: Token[] = [];
  let lineStart = true;
  LEXEMES.lastIndex = 0;
  for (let match = LEXEMES.exec(source); match; match = LEXEMES.exec(source)) {
    const text = match[0];
    const g = match.groups!;
    let cls: TokenClass | undefined;
    if (g.comment !== undefined) cls = 'c';
    else if (g.string !== undefined) cls = 's';
    else if (g.number !== undefined) cls = 'n';
    else if (g.attribute !== undefined) cls = language === 'wgsl' ? 'a' : undefined;
    else if (g.directive !== undefined) cls = language === 'cuda' && lineStart ? 'p' : undefined;
    else if (g.word !== undefined) {
      if (vocabulary.keywords.has(text)) cls = 'k';
      else if (vocabulary.types.has(text)) cls = 't';
      else if (vocabulary.builtins.has(text)) cls = 'b';
      else if (/^[A-Z][A-Z0-9_]+$/.test(text)) cls = 'm';
    }
    pushToken(tokens, text, cls);
    if (text.includes('\n')) lineStart = /\n[ \t]*$/.test(text);
    else if (!/^[ \t]+$/.test(text)) lineStart = false;
  }
  return tokens;
}
