/**
 * CIFAR-10 class names, in label-index order (the sorted folder names of the ImageFolder layout), with the
 * Chinese names the seed's classifier prints.
 *
 * What it is: a lookup over the English names (src/data/cifar-binary.ts, with the data set they belong to) and the
 * Chinese ones below, that also names the classes of a fine-tuned head with more outputs. What it is not: a
 * dataset reader (src/data owns that).
 * Reference: Krizhevsky, "Learning Multiple Layers of Features from Tiny Images" (2009), the CIFAR-10 labels.
 */
import { CIFAR10_CLASSES } from '../data/cifar-binary';

/** The Chinese names the seed's classifier prints, in the label order of CIFAR10_CLASSES. */
export const CIFAR10_CLASSES_ZH = ['飞机', '汽车', '鸟', '猫', '鹿', '狗', '青蛙', '马', '船', '卡车'] as const;

export { CIFAR10_CLASSES };

export interface ClassName {
  readonly index: number;
  readonly en: string;
  readonly zh: string;
}

/**
 * The names of class `index`. A model with more classes than CIFAR-10 (a fine-tuned head) still gets names:
 * `class_<index>` in both languages, so that nothing downstream has to handle a missing label.
 */
export function className(index: number): ClassName {
  if (!Number.isInteger(index) || index < 0) {
    throw new Error(`className: expected a non-negative integer class index, received ${index}`);
  }
  const en: string = CIFAR10_CLASSES[index] ?? `class_${index}`;
  const zh: string = CIFAR10_CLASSES_ZH[index] ?? `class_${index}`;
  return { index, en, zh };
}

export function classNames(numClasses: number): ClassName[] {
  return Array.from({ length: numClasses }, (_, i) => className(i));
}
