// Stand-in for the CUDA header of this name: see cuda_emulation.h.
#pragma once
#include "cuda_emulation.h"
