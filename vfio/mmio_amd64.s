#include "textflag.h"

// func mmioStore32(p *uint32, v uint32)
TEXT ·mmioStore32(SB), NOSPLIT, $0-12
	MOVQ p+0(FP), AX
	MOVL v+8(FP), BX
	MOVL BX, (AX)
	RET
