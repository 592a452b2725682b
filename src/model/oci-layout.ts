import * as z from 'zod/mini';

export const ociLayoutSchema = z.looseObject({ imageLayoutVersion: z.string() });
export type OciLayout = z.infer<typeof ociLayoutSchema>;
export const IMAGE_LAYOUT_VERSION = '1.0.0';
