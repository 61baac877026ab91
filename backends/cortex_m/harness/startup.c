/* Bare-metal start-up for the QEMU harness: vector table (initial stack at the top of RAM),
 * FPU enable, .data copy and .bss clearing, newlib's semihosting I/O (rdimon.specs), main. */
#include <stdint.h>
#include <stdlib.h>

extern uint32_t __stack_top, __etext, __data_start__, __data_end__, __bss_start__, __bss_end__;
extern void initialise_monitor_handles(void);
extern void __libc_init_array(void);
extern int main(void);

void Reset_Handler(void);
void Default_Handler(void);

void Reset_Handler(void)
{
#if defined(__ARM_FP)
    *(volatile uint32_t *)0xE000ED88u |= (0xFu << 20); /* CPACR: full access to CP10 and CP11 */
    __asm__ volatile("dsb\n isb");
#endif
    const uint32_t *src = &__etext;
    for (uint32_t *dst = &__data_start__; dst < &__data_end__;) {
        *dst++ = *src++;
    }
    for (uint32_t *dst = &__bss_start__; dst < &__bss_end__;) {
        *dst++ = 0;
    }
    initialise_monitor_handles();
    __libc_init_array();
    exit(main());
}

void Default_Handler(void)
{
    for (;;) {
    }
}

__attribute__((section(".isr_vector"), used)) const void *const edgec_vectors[16] = {
    &__stack_top, (const void *)Reset_Handler, (const void *)Default_Handler, (const void *)Default_Handler,
    (const void *)Default_Handler, (const void *)Default_Handler, (const void *)Default_Handler, 0, 0, 0, 0,
    (const void *)Default_Handler, (const void *)Default_Handler, 0, (const void *)Default_Handler,
    (const void *)Default_Handler,
};
