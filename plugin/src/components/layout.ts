/** Label width shared by the query, filter, annotation and variable editors, so their fields line up. */
export const LABEL_WIDTH = 14;
