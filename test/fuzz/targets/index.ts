/** Every fuzz target, by name. */
import type { Target } from '../harness';
import { exif } from './exif';
import { gif } from './gif';
import { jpeg } from './jpeg';
import { png } from './png';
import { upload } from './upload';
import { webp } from './webp';
import { wire } from './wire';

export const TARGETS: Record<string, Target> = { jpeg, png, gif, webp, exif, wire, upload };
