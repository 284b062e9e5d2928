// SPDX-License-Identifier: GPL-2.0
/*
 * board.ko - the kit's emulated board. On a real board a device tree tells
 * the kernel which devices sit at which addresses; here QEMU's PCI devices
 * stand in for the SoC's blocks, and this module plays the device tree: it
 * binds each PCI device and registers the platform device a lab's driver
 * matches by name, with the memory resources the driver must claim.
 *
 * fsled: the FS4412's GPIO banks live in an ivshmem-plain device whose
 * shared memory (BAR 2) is a file on the host, so the host can watch the
 * LEDs. Each bank keeps its offset from the SoC's GPIO base 0x11000000:
 * a register at 0x11000C40 on the board is at BAR 2 + 0xC40 here.
 *
 * dma: QEMU's edu device, a DMA engine with a 4 KiB buffer, becomes the
 * "edu-dma" platform device: its registers (BAR 0), its interrupt (an MSI
 * vector) and a DMA mask, so that the DMA API works on the platform
 * device. The board can master the PCI bus with all 32 address bits, as a
 * platform bus would; the driver must narrow that to what edu can do.
 */
#include <linux/dma-mapping.h>
#include <linux/ioport.h>
#include <linux/module.h>
#include <linux/pci.h>
#include <linux/platform_device.h>

#define IVSHMEM_VENDOR		0x1af4
#define IVSHMEM_PLAIN		0x1110
#define IVSHMEM_SHMEM_BAR	2
#define EDU_VENDOR		0x1234
#define EDU_DEVICE		0x11e8
#define EDU_REGS_BAR		0

/* Exynos4412 GPIO banks with an LED, as offsets from 0x11000000. */
#define FS4412_GPX2		0x000C40	/* LED2: GPX2_7 */
#define FS4412_GPX1		0x000C20	/* LED3: GPX1_0 */
#define FS4412_GPF3		0x4001E0	/* LED4, LED5: GPF3_4, GPF3_5 */
#define FS4412_BANK_SIZE	8		/* CON, then DAT */

static const struct {
	const char *name;
	unsigned long offset;
} fsled_banks[] = {
	{ "GPX2", FS4412_GPX2 },
	{ "GPX1", FS4412_GPX1 },
	{ "GPF3", FS4412_GPF3 },
};

static int board_gpio_probe(struct pci_dev *pci)
{
	struct resource res[ARRAY_SIZE(fsled_banks)];
	struct platform_device *pdev;
	resource_size_t base;
	unsigned int i;
	int ret;

	/*
	 * No pci_request_regions(): it would claim BAR 2 whole and busy, and
	 * the lab's driver must be able to claim each bank inside it.
	 */
	ret = pcim_enable_device(pci);
	if (ret)
		return ret;
	base = pci_resource_start(pci, IVSHMEM_SHMEM_BAR);
	if (pci_resource_len(pci, IVSHMEM_SHMEM_BAR) < FS4412_GPF3 + FS4412_BANK_SIZE)
		return dev_err_probe(&pci->dev, -ENODEV, "shared memory too small for GPF3\n");

	memset(res, 0, sizeof(res));
	for (i = 0; i < ARRAY_SIZE(fsled_banks); i++) {
		res[i].start = base + fsled_banks[i].offset;
		res[i].end = res[i].start + FS4412_BANK_SIZE - 1;
		res[i].flags = IORESOURCE_MEM;
		res[i].name = fsled_banks[i].name;
	}
	pdev = platform_device_register_resndata(&pci->dev, "fsled", PLATFORM_DEVID_NONE,
						 res, ARRAY_SIZE(res), NULL, 0);
	if (IS_ERR(pdev))
		return PTR_ERR(pdev);
	pci_set_drvdata(pci, pdev);
	return 0;
}

static int board_edu_probe(struct pci_dev *pci)
{
	struct resource res[2];
	struct platform_device_info info = {
		.parent = &pci->dev,
		.name = "edu-dma",
		.id = PLATFORM_DEVID_NONE,
		.res = res,
		.num_res = ARRAY_SIZE(res),
		.dma_mask = DMA_BIT_MASK(32),
	};
	struct platform_device *pdev;
	int ret, irq;

	ret = pcim_enable_device(pci);
	if (ret)
		return ret;
	pci_set_master(pci);
	ret = pci_alloc_irq_vectors(pci, 1, 1, PCI_IRQ_MSI);
	if (ret < 0)
		return ret;
	irq = pci_irq_vector(pci, 0);

	memset(res, 0, sizeof(res));
	res[0].start = pci_resource_start(pci, EDU_REGS_BAR);
	res[0].end = pci_resource_end(pci, EDU_REGS_BAR);
	res[0].flags = IORESOURCE_MEM;
	res[0].name = "edu";
	res[1].start = irq;
	res[1].end = irq;
	res[1].flags = IORESOURCE_IRQ;
	pdev = platform_device_register_full(&info);
	if (IS_ERR(pdev)) {
		pci_free_irq_vectors(pci);
		return PTR_ERR(pdev);
	}
	pci_set_drvdata(pci, pdev);
	return 0;
}

static int board_probe(struct pci_dev *pci, const struct pci_device_id *id)
{
	return id->vendor == EDU_VENDOR ? board_edu_probe(pci) : board_gpio_probe(pci);
}

static void board_remove(struct pci_dev *pci)
{
	platform_device_unregister(pci_get_drvdata(pci));
	pci_free_irq_vectors(pci);
}

static const struct pci_device_id board_ids[] = {
	{ PCI_DEVICE(IVSHMEM_VENDOR, IVSHMEM_PLAIN) },
	{ PCI_DEVICE(EDU_VENDOR, EDU_DEVICE) },
	{ }
};
MODULE_DEVICE_TABLE(pci, board_ids);

static struct pci_driver board_driver = {
	.name = "kdkit-board",
	.id_table = board_ids,
	.probe = board_probe,
	.remove = board_remove,
};
module_pci_driver(board_driver);

MODULE_DESCRIPTION("kdkit's emulated board: platform devices for the labs");
MODULE_LICENSE("GPL");
