/* Test harness for the generated library: reads int8 samples from edgec_input.bin (each
 * sample every input's bytes, in input order), runs the network on each, writes the outputs
 * to edgec_output.bin (every output's bytes, in output order). It reads each next sample into
 * the inputs before it writes out the previous outputs, as the model header allows, so an
 * output overwritten by the next input shows as a difference from the reference (a project
 * compiled with inputs and outputs overlapping, *_SEPARATE_IO 0, writes first; a test
 * may force the read-ahead with -DEDGEC_HARNESS_READ_AHEAD=1 to show what such a project loses). On the
 * emulated core (semihosting) it also prints, per sample, the CMSDK timer ticks around the
 * invoke call and the stack it used. Built for the host (EDGEC_HOST) it is a plain program,
 * for sanitizer runs. The project's names come from edgec_harness.h (generated). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "edgec_harness.h"

#ifndef EDGEC_HARNESS_READ_AHEAD
#define EDGEC_HARNESS_READ_AHEAD EDGEC_HARNESS_SEPARATE_IO
#endif

/* 1 when a whole sample (every input) was read. */
static int read_sample(FILE *in)
{
    for (uint32_t k = 0; k < EDGEC_HARNESS_INPUTS; k++) {
        const uint32_t size = edgec_harness_input_sizes[k];
        if (fread(EDGEC_HARNESS_INPUT(k), 1, size, in) != size) {
            return 0;
        }
    }
    return 1;
}

static void write_outputs(FILE *out)
{
    for (uint32_t k = 0; k < EDGEC_HARNESS_OUTPUTS; k++) {
        fwrite(EDGEC_HARNESS_OUTPUT(k), 1, edgec_harness_output_sizes[k], out);
    }
}


#ifdef EDGEC_TRACE
static FILE *trace_file;

void edgec_trace(uint32_t layer, const void *data, uint32_t bytes);
void edgec_trace(uint32_t layer, const void *data, uint32_t bytes)
{
    if (trace_file == NULL) {
        trace_file = fopen("edgec_trace.bin", "wb");
    }
    const uint32_t header[2] = {layer, bytes};
    fwrite(header, sizeof header, 1, trace_file);
    fwrite(data, 1, bytes, trace_file);
}
#endif

#ifndef EDGEC_HOST
#define TIMER ((volatile uint32_t *)EDGEC_TIMER_BASE)
#define STACK_PATTERN 0xA5A5A5A5u
extern uint32_t __stack_limit;

#ifdef EDGEC_TIMER_SSE_COUNTER
/* The SSE-300 system counter: CNTCR (offset 0) enables it; CNTCV's low word (offset 8) counts up. */
static void timer_start(void)
{
    TIMER[0] = 1;
}

static uint32_t timer_ticks(void)
{
    return TIMER[2];
}
#else
/* A CMSDK APB timer: CTRL (offset 0), VALUE (4) counting down from RELOAD (8). */
static void timer_start(void)
{
    TIMER[0] = 0;
    TIMER[2] = 0xFFFFFFFFu;
    TIMER[1] = 0xFFFFFFFFu;
    TIMER[0] = 1;
}

static uint32_t timer_ticks(void)
{
    return 0xFFFFFFFFu - TIMER[1];
}
#endif

#ifdef EDGEC_PROFILE
#define EDGEC_MAX_LAYERS 1024
static uint32_t layer_ticks[EDGEC_MAX_LAYERS];
static uint32_t layer_count;

void edgec_profile(uint32_t layer);
void edgec_profile(uint32_t layer)
{
    if (layer < EDGEC_MAX_LAYERS) {
        layer_ticks[layer] = timer_ticks();
        layer_count = layer + 1;
    }
}
#endif

static uint32_t *stack_pointer(void)
{
    uint32_t *sp;
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    return sp;
}
#endif

int main(void)
{
    FILE *in = fopen("edgec_input.bin", "rb");
    FILE *out = fopen("edgec_output.bin", "wb");
    if (in == NULL || out == NULL) {
        puts("edgec: cannot open edgec_input.bin or edgec_output.bin");
        return 1;
    }
    unsigned long sample = 0;
    int more = read_sample(in);
    while (more) {
#ifndef EDGEC_HOST
        uint32_t *const top = stack_pointer() - 16;
        for (uint32_t *word = &__stack_limit; word < top; word++) {
            *word = STACK_PATTERN;
        }
        timer_start();
        const uint32_t start = timer_ticks();
        EDGEC_HARNESS_INVOKE();
        const uint32_t ticks = timer_ticks() - start;
        const uint32_t *low = &__stack_limit;
        while (low < top && *low == STACK_PATTERN) {
            low++;
        }
        printf("edgec: sample %lu ticks %lu stack %lu\n", sample, (unsigned long)ticks,
               (unsigned long)((uint32_t)(top - low) * 4u));
#ifdef EDGEC_PROFILE
        for (uint32_t layer = 0; layer < layer_count; layer++) {
            if (layer_ticks[layer] != 0) {
                printf("edgec: layer %lu ticks %lu\n", (unsigned long)layer,
                       (unsigned long)(layer_ticks[layer] - start));
                layer_ticks[layer] = 0;
            }
        }
#endif
#else
        EDGEC_HARNESS_INVOKE();
#endif
#if EDGEC_HARNESS_READ_AHEAD
        more = read_sample(in);
        write_outputs(out);
#else
        write_outputs(out);
        more = read_sample(in);
#endif
        sample++;
    }
    fclose(in);
    fclose(out);
#ifdef EDGEC_TRACE
    if (trace_file != NULL) {
        fclose(trace_file);
    }
#endif
    printf("edgec: done %lu\n", sample);
    return 0;
}
